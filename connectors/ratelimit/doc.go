// Package ratelimit keeps Herald's sends inside Telegram's flood limits with
// scoped token buckets, so the delivery worker asks before it sends instead
// of learning the limits from 429 answers.
//
// Scopes (the strings are shared with connectors.RetryableError.Scope):
//
//	bot:<account>   every send of one bot account        (≈30 msg/s, 1000 msg/s with paid broadcast)
//	user:<account>  every send of one MTProto user       (conservative, configurable per account)
//	chat:<chat id>  every send into one chat             (1 msg/s with a small burst)
//	                and, for groups and channels, also    (20 msg/min)
//
// A retry_after from Telegram is applied with [Limiter.Penalize] to exactly
// the scope it names, so one chat's slow mode never stalls the whole bot.
//
// The buckets are per process. Limits hold across several worker processes
// because only the process holding an account's [Lease] sends for that
// account: the holder's buckets are then the account's buckets. See
// docs/connectors.md.
package ratelimit

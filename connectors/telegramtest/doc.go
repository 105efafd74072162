// Package telegramtest is a fake Telegram Bot API server for tests, demos and
// load tests. It answers like Telegram for the methods Herald uses
// (sendMessage, sendPhoto, editMessageText, deleteMessage, pinChatMessage,
// getMe), with Telegram's error texts and its flood control: per bot
// 30 msg/s, per chat 1 msg/s with a short burst, per group or channel
// 20 msg/min, answered with 429 and parameters.retry_after.
//
// Chats can be scripted (blocked, deactivated, not found, kicked, migrated
// to a supergroup, slow mode) and faults injected (5xx answers, connections
// dropped before or after the message was accepted) from a seeded random
// source, so a run is reproducible. Every accepted call is recorded.
//
// New starts it on a loopback port like httptest.NewServer; NewUnstarted
// gives only the Handler, for `herald dev telegram-fake` to serve.
package telegramtest

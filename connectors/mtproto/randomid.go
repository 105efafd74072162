package mtproto

import (
	"crypto/sha256"
	"encoding/binary"
)

// randomIDDomain separates Herald's random_ids from any other use of a hash
// of an action id.
const randomIDDomain = "herald/mtproto/random_id/v1\x00"

// RandomID derives the MTProto random_id of an action from its id alone.
// Telegram uses random_id to drop a resent message, so every attempt of one
// action carries the same value: if an earlier attempt did reach Telegram, a
// later one is deduplicated there instead of messaging the person twice.
// (Deriving it from the attempt number too would defeat exactly that.)
func RandomID(actionID string) int64 {
	sum := sha256.Sum256([]byte(randomIDDomain + actionID))
	id := int64(binary.LittleEndian.Uint64(sum[:8]))
	if id == 0 {
		id = 1 // 0 reads as "unset" in places; one value in 2^64 is moved.
	}
	return id
}

package telegramtest

import "time"

// Behaviour scripts how the fake answers for one chat.
type Behaviour struct {
	kind      behaviourKind
	migrateTo int64
	slowMode  time.Duration
}

type behaviourKind int

const (
	normal behaviourKind = iota
	blocked
	deactivated
	notFound
	kicked
	cantInitiate
	migrated
	slowMode
)

// Scripted behaviours, each answered with Telegram's own text.
var (
	// Normal undoes a script.
	Normal = Behaviour{}
	// Blocked: 403 "Forbidden: bot was blocked by the user".
	Blocked = Behaviour{kind: blocked}
	// Deactivated: 403 "Forbidden: user is deactivated".
	Deactivated = Behaviour{kind: deactivated}
	// NotFound: 400 "Bad Request: chat not found".
	NotFound = Behaviour{kind: notFound}
	// Kicked: 403 "Forbidden: bot was kicked from the group chat".
	Kicked = Behaviour{kind: kicked}
	// CantInitiate: 403 "Forbidden: bot can't initiate conversation with a user".
	CantInitiate = Behaviour{kind: cantInitiate}
)

// MigratedTo: the group was upgraded to a supergroup with id to; every call
// is answered 400 "Bad Request: group chat was upgraded to a supergroup
// chat" with parameters.migrate_to_chat_id.
func MigratedTo(to int64) Behaviour { return Behaviour{kind: migrated, migrateTo: to} }

// SlowMode: the chat accepts one message per every; a message sooner is
// answered 429 "Too Many Requests: retry after N".
func SlowMode(every time.Duration) Behaviour { return Behaviour{kind: slowMode, slowMode: every} }

// Script sets chat's behaviour.
func (s *Server) Script(chat string, b Behaviour) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b.kind == normal {
		delete(s.scripts, chat)
		return
	}
	s.scripts[chat] = b
}

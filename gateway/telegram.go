package gateway

import (
	"cmp"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/store"
)

// Inbound configures how Herald treats messages people send to its bots.
type Inbound struct {
	// Keywords that opt a person out, compared case-insensitively with the
	// whole trimmed message. /stop always opts out.
	Keywords []string
	// Reply confirms an opt-out. It is returned in the webhook response
	// (Telegram executes it), because the opted-out person must get the
	// confirmation even though policy now denies every send to them.
	Reply string
	// Queued, if set, is called after an update was processed and queued
	// for the account's Bot API facade bot (package facade wakes its
	// getUpdates long polls and webhook forwarder). The update is queued in
	// the same transaction as the opt-out it caused, so a bot never sees a
	// /stop that Herald did not record.
	Queued func(acc herald.Account)
}

// DefaultOptOutKeywords cover the languages Herald's users write in most.
var DefaultOptOutKeywords = []string{
	"stop", "unsubscribe", "stopp", "стоп", "отписаться", "отписка", "abmelden", "désabonner", "desabonner",
	"baja", "cancelar", "parar", "annulla", "disiscriviti", "afmelden", "zrezygnuj", "відписатися",
}

// DefaultOptOutReply is the confirmation sent after an opt-out.
const DefaultOptOutReply = "You will receive no more messages from us. Send /start to hear from us again."

// webhookSecretHeader is the header Telegram sets to the secret_token given to setWebhook.
const webhookSecretHeader = "X-Telegram-Bot-Api-Secret-Token"

// tgUpdate is the part of a Telegram Update Herald reads.
type tgUpdate struct {
	UpdateID int64      `json:"update_id"`
	Message  *tgMessage `json:"message"`
	MyMember *struct {
		Chat          tgChat `json:"chat"`
		Date          int64  `json:"date"`
		NewChatMember struct {
			Status string `json:"status"`
		} `json:"new_chat_member"`
	} `json:"my_chat_member"`
}

type tgMessage struct {
	Date int64  `json:"date"`
	Chat tgChat `json:"chat"`
	From *struct {
		LanguageCode string `json:"language_code"`
	} `json:"from"`
	Text string `json:"text"`
}

type tgChat struct {
	ID   int64  `json:"id"`
	Type string `json:"type"`
}

// telegramWebhook receives updates for one account. It answers 200 to
// everything Telegram may resend (so a bad update is not retried forever)
// and 404 to a wrong account or secret.
func (s *Server) telegramWebhook(c *gin.Context) {
	ctx := c.Request.Context()
	acc, err := s.Store.AccountByWebhook(ctx, c.Param("account"), c.GetHeader(webhookSecretHeader))
	if err != nil {
		writeProblem(c, err)
		return
	}
	var u tgUpdate
	raw, err := io.ReadAll(&textReader{r: http.MaxBytesReader(c.Writer, c.Request.Body, maxBodyBytes)})
	if err != nil {
		writeProblem(c, jsonError(err))
		return
	}
	if err := json.Unmarshal(raw, &u); err != nil {
		writeProblem(c, jsonError(err))
		return
	}
	if err := checkStrings(u); err != nil {
		writeProblem(c, err)
		return
	}
	reply, queued, err := s.handleUpdate(ctx, acc, u, raw)
	if err != nil {
		writeProblem(c, err)
		return
	}
	if queued && s.Inbound.Queued != nil {
		s.Inbound.Queued(acc)
	}
	if reply != nil {
		c.JSON(http.StatusOK, reply)
		return
	}
	c.Status(http.StatusOK)
}

// handleUpdate records what an update means for consent and queues it,
// processed, for the account's facade bot (if it has one). It returns a Bot
// API method call to answer with, if any, and whether the update was queued.
func (s *Server) handleUpdate(ctx context.Context, acc herald.Account, u tgUpdate, raw []byte) (gin.H, bool, error) {
	var reply gin.H
	var queued bool
	err := s.Store.InTx(ctx, func(tx *store.Tx) error {
		kind, chat := updateKind(raw)
		var err error
		if queued, err = tx.EnqueueFacadeUpdate(ctx, acc, u.UpdateID, kind, chat, raw); err != nil {
			return err
		}
		switch {
		case u.Message != nil && u.Message.Chat.Type == "private":
			m := u.Message
			chat := strconv.FormatInt(m.Chat.ID, 10)
			lang := ""
			if m.From != nil && herald.ValidLanguage(m.From.LanguageCode) {
				lang = m.From.LanguageCode
			}
			contact, err := tx.RecordInbound(ctx, acc.Org, chat, lang, time.Unix(m.Date, 0))
			if err != nil {
				return err
			}
			text := strings.ToLower(strings.TrimSpace(m.Text))
			switch {
			case s.isOptOut(text):
				if contact.OptedOutAt == nil {
					source := "telegram.keyword"
					if strings.HasPrefix(text, "/stop") {
						source = "telegram.stop"
					}
					if _, err := tx.OptOut(ctx, acc.Org, contact.ID, source); err != nil {
						return err
					}
					if err := appendContactEntry(ctx, tx, acc, contact.ID, ledger.KindContactOptedOut, map[string]any{"source": source, "confirmation": "webhook_reply"}); err != nil {
						return err
					}
				}
				reply = gin.H{"method": "sendMessage", "chat_id": m.Chat.ID, "text": s.optOutReply()}
			case text == "/start" || strings.HasPrefix(text, "/start "):
				if contact.OptedOutAt != nil {
					resumed, err := tx.OptIn(ctx, acc.Org, contact.ID)
					if err != nil {
						return err
					}
					rs := make([]any, 0, len(resumed))
					for _, p := range resumed {
						rs = append(rs, p)
					}
					return appendContactEntry(ctx, tx, acc, contact.ID, "contact.opted_in", map[string]any{"source": "telegram.start", "resumed": rs})
				}
			}
		case u.MyMember != nil && u.MyMember.Chat.Type == "private" && u.MyMember.NewChatMember.Status == "kicked":
			// The person blocked the bot: suppress them for this organisation.
			contact, err := tx.RecordInbound(ctx, acc.Org, strconv.FormatInt(u.MyMember.Chat.ID, 10), "", time.Unix(u.MyMember.Date, 0))
			if err != nil {
				return err
			}
			if contact.OptedOutAt == nil {
				if _, err := tx.OptOut(ctx, acc.Org, contact.ID, "telegram.blocked"); err != nil {
					return err
				}
				return appendContactEntry(ctx, tx, acc, contact.ID, ledger.KindContactOptedOut, map[string]any{"source": "telegram.blocked"})
			}
		}
		return nil
	})
	return reply, queued && err == nil, err
}

// updateKind names an update's type (its one field besides update_id) and
// the chat it came from, if any (erasure finds a person's queued updates by it).
func updateKind(raw []byte) (kind, chat string) {
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil {
		return "unknown", ""
	}
	for k := range fields {
		if k != "update_id" {
			kind = k
			break
		}
	}
	var v struct {
		Chat *struct {
			ID int64 `json:"id"`
		} `json:"chat"`
		From *struct {
			ID int64 `json:"id"`
		} `json:"from"`
	}
	if kind == "" || json.Unmarshal(fields[kind], &v) != nil {
		return cmp.Or(kind, "unknown"), ""
	}
	switch {
	case v.Chat != nil:
		chat = strconv.FormatInt(v.Chat.ID, 10)
	case v.From != nil:
		chat = strconv.FormatInt(v.From.ID, 10)
	}
	return kind, chat
}

func appendContactEntry(ctx context.Context, tx *store.Tx, acc herald.Account, contact, kind string, attrs map[string]any) error {
	_, err := tx.AppendLedger(ctx, acc.Org, store.LedgerRecord{Kind: kind, Actor: "telegram",
		Refs: map[string]string{"contact": contact, "account": acc.ID}, Attrs: attrs})
	return err
}

func (s *Server) isOptOut(text string) bool {
	if text == "/stop" || strings.HasPrefix(text, "/stop ") || strings.HasPrefix(text, "/stop@") {
		return true
	}
	kw := s.Inbound.Keywords
	if kw == nil {
		kw = DefaultOptOutKeywords
	}
	for _, k := range kw {
		if text == strings.ToLower(k) {
			return true
		}
	}
	return false
}

func (s *Server) optOutReply() string {
	if s.Inbound.Reply != "" {
		return s.Inbound.Reply
	}
	return DefaultOptOutReply
}

// setWebhookSecret creates a new webhook secret for an account (admins).
// Pass it to Telegram's setWebhook as secret_token with the URL
// https://<herald>/v1/telegram/webhook/<account>.
func (s *Server) setWebhookSecret(c *gin.Context) {
	if !s.authorize(c, "accounts", "write") {
		return
	}
	ctx := c.Request.Context()
	p := principal(c)
	var secret string
	err := s.Store.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if secret, err = tx.SetWebhookSecret(ctx, p.Org, c.Param("id")); err != nil {
			return err
		}
		_, err = tx.AppendLedger(ctx, p.Org, store.LedgerRecord{Kind: ledger.KindSecretRotated, Actor: p.ID,
			Refs: map[string]string{"account": c.Param("id")}, Attrs: map[string]any{"secret": "webhook"}})
		return err
	})
	if err != nil {
		writeProblem(c, err)
		return
	}
	writeJSON(c, http.StatusOK, gin.H{"secret_token": secret, "url_path": "/v1/telegram/webhook/" + c.Param("id"),
		"note": "shown once; pass it to setWebhook as secret_token"})
}

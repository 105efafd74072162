package telegramtest_test

import (
	"context"
	"fmt"

	"github.com/heraldhq/herald/connectors"
	"github.com/heraldhq/herald/connectors/botapi"
	"github.com/heraldhq/herald/connectors/telegramtest"
)

type staticToken string

func (s staticToken) BotToken(context.Context, connectors.Account) (string, error) {
	return string(s), nil
}

func Example() {
	fake := telegramtest.New(telegramtest.Options{Tokens: []string{"100:demo"}})
	defer fake.Close()
	fake.Script("13", telegramtest.Blocked)

	c, _ := botapi.New(botapi.Config{BaseURL: fake.URL(), Tokens: staticToken("100:demo")})
	acct := connectors.Account{ID: "demo", Kind: "bot"}
	r, err := c.Send(context.Background(), connectors.Delivery{Account: acct, Kind: connectors.KindSendMessage, ChatID: "12", Text: "hello"})
	fmt.Println(r.MessageID, err)
	_, err = c.Send(context.Background(), connectors.Delivery{ActionID: "a1", Attempt: 1, Account: acct, Kind: connectors.KindSendMessage, ChatID: "13", Text: "hello"})
	fmt.Println(connectors.Classify(err), err)
	fmt.Println(len(fake.Messages()), fake.Messages()[0].Text)
	// Output:
	// 1 <nil>
	// permanent permanent (blocked): action a1 attempt 1: telegram sendMessage: 403 Forbidden: bot was blocked by the user
	// 1 hello
}

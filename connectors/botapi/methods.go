package botapi

import "context"

// SendMessage calls sendMessage.
func (c *Client) SendMessage(ctx context.Context, token string, p SendMessageParams) (*Message, error) {
	var m Message
	if err := c.Call(ctx, token, "sendMessage", p, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// SendPhoto calls sendPhoto.
func (c *Client) SendPhoto(ctx context.Context, token string, p SendPhotoParams) (*Message, error) {
	var m Message
	if err := c.Call(ctx, token, "sendPhoto", p, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// EditMessageText calls editMessageText for a message the bot sent.
func (c *Client) EditMessageText(ctx context.Context, token string, p EditMessageTextParams) (*Message, error) {
	var m Message
	if err := c.Call(ctx, token, "editMessageText", p, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// DeleteMessage calls deleteMessage.
func (c *Client) DeleteMessage(ctx context.Context, token string, p DeleteMessageParams) error {
	return c.Call(ctx, token, "deleteMessage", p, nil)
}

// UnpinChatMessage calls unpinChatMessage.
func (c *Client) UnpinChatMessage(ctx context.Context, token string, p UnpinChatMessageParams) error {
	return c.Call(ctx, token, "unpinChatMessage", p, nil)
}

// PinChatMessage calls pinChatMessage.
func (c *Client) PinChatMessage(ctx context.Context, token string, p PinChatMessageParams) error {
	return c.Call(ctx, token, "pinChatMessage", p, nil)
}

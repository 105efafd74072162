package mtproto

import (
	_ "github.com/gotd/td/telegram"
	_ "github.com/gotd/td/tgtest/cluster"
)

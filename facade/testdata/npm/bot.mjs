// An ordinary bot, written as grammY and Telegraf users write them: the
// only Herald-specific things are the API root and the token. The Go test
// (facade/framework_test.go) runs one step per invocation and reads one
// JSON line from stdout.
//
//   node bot.mjs <step> <token> [chat] [text]
//
// HERALD_API_ROOT is Herald's base URL.
import { Bot, GrammyError } from "grammy";
import { autoRetry } from "@grammyjs/auto-retry";
import { Telegraf, TelegramError } from "telegraf";

const [step, token, chat, text] = process.argv.slice(2);
const apiRoot = process.env.HERALD_API_ROOT;
const out = (v) => process.stdout.write(JSON.stringify(v) + "\n");

function grammy(retry) {
  const bot = new Bot(token, { client: { apiRoot } });
  if (retry) {
    // The stock plugin: honours parameters.retry_after of a 429.
    bot.api.config.use(autoRetry({ maxRetryAttempts: 3, maxDelaySeconds: 60 }));
  }
  return bot;
}

async function grammySend(retry) {
  const started = Date.now();
  try {
    const message = await grammy(retry).api.sendMessage(chat, text);
    out({ ok: true, message, elapsed_ms: Date.now() - started });
  } catch (e) {
    if (!(e instanceof GrammyError)) throw e;
    out({ ok: false, grammy_error: true, error_code: e.error_code, description: e.description,
      parameters: e.parameters ?? {}, elapsed_ms: Date.now() - started });
  }
}

async function main() {
  switch (step) {
    case "grammy-send":
      return grammySend(false);
    case "grammy-autoretry":
      return grammySend(true);
    case "grammy-getme":
      return out({ ok: true, me: await grammy(false).api.getMe() });
    case "grammy-poll": {
      // Long polling (bot.start) through Herald: every text message is
      // printed; on /stop the bot tries a send (policy decides) and stops.
      const bot = new Bot(token, { client: { apiRoot } });
      bot.on("message:text", async (ctx) => {
        out({ update_id: ctx.update.update_id, text: ctx.message.text, chat: ctx.chat.id });
        if (ctx.message.text === "/stop") {
          try {
            const message = await ctx.api.sendMessage(chat, text);
            out({ ok: true, message });
          } catch (e) {
            if (!(e instanceof GrammyError)) throw e;
            out({ ok: false, grammy_error: true, error_code: e.error_code, description: e.description });
          }
          setTimeout(() => bot.stop(), 0);
        }
      });
      await bot.start({ onStart: (me) => out({ started: true, username: me.username }) });
      return out({ stopped: true });
    }
    case "telegraf-send": {
      const bot = new Telegraf(token, { telegram: { apiRoot } });
      try {
        out({ ok: true, message: await bot.telegram.sendMessage(chat, text) });
      } catch (e) {
        if (!(e instanceof TelegramError)) throw e;
        out({ ok: false, telegraf_error: true, error_code: e.code, description: e.description });
      }
      return;
    }
  }
  throw new Error("unknown step " + step);
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + "\n");
  process.exit(1);
});

// A SignalR listener using the real @microsoft/signalr client, for tests.
//
//   node tests/clients/signalr_listen.mjs --url http://127.0.0.1:PORT/api
//        [--transport websockets|sse|longpolling] [--header name=value]...
//        [--access-token JWT] [--targets delta,status,claim]
//        [--duration-ms N] [--until-status completed] [--no-reconnect]
//        [--reconnect-delays 0,2000,10000,30000] [--log-level none|error|warning|information|debug]
//
// The client POSTs {url}/negotiate; a {url, accessToken} answer redirects it to the
// SignalR Service, exactly as in the browser. One JSON line per event on stdout:
//   {"event":"connected","connectionId":...}
//   {"event":"message","target":...,"arguments":[...]}
//   {"event":"reconnecting","error":...}   {"event":"reconnected","connectionId":...}
//   {"event":"closed","error":...}          {"event":"error","error":...} (start failed)
// Exit code: 0 after --duration-ms / --until-status / a clean close, 1 on a failed start,
// 2 when the connection closed with an error. SIGTERM or SIGINT stops the client cleanly.

import * as signalR from "@microsoft/signalr";

function parseArgs(argv) {
  const opts = {
    url: null,
    transport: null,
    headers: {},
    accessToken: null,
    targets: ["delta", "status", "claim"],
    durationMs: null,
    untilStatus: null,
    reconnect: true,
    reconnectDelays: [0, 2000, 10000, 30000],
    logLevel: "none",
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${flag} needs a value`);
      return argv[++i];
    };
    switch (flag) {
      case "--url": opts.url = next(); break;
      case "--transport": opts.transport = next().toLowerCase(); break;
      case "--header": {
        const value = next();
        const eq = value.indexOf("=");
        if (eq < 1) throw new Error(`--header wants name=value, got ${value}`);
        opts.headers[value.slice(0, eq)] = value.slice(eq + 1);
        break;
      }
      case "--access-token": opts.accessToken = next(); break;
      case "--targets": opts.targets = next().split(",").map((t) => t.trim()).filter(Boolean); break;
      case "--duration-ms": opts.durationMs = Number(next()); break;
      case "--until-status": opts.untilStatus = next(); break;
      case "--no-reconnect": opts.reconnect = false; break;
      case "--reconnect-delays": opts.reconnectDelays = next().split(",").map(Number); break;
      case "--log-level": opts.logLevel = next().toLowerCase(); break;
      default: throw new Error(`unknown argument ${flag}`);
    }
  }
  if (!opts.url) throw new Error("--url is required");
  return opts;
}

const TRANSPORTS = {
  websockets: signalR.HttpTransportType.WebSockets,
  sse: signalR.HttpTransportType.ServerSentEvents,
  longpolling: signalR.HttpTransportType.LongPolling,
};
const LOG_LEVELS = {
  none: signalR.LogLevel.None,
  error: signalR.LogLevel.Error,
  warning: signalR.LogLevel.Warning,
  information: signalR.LogLevel.Information,
  debug: signalR.LogLevel.Debug,
};

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function errorText(err) {
  if (!err) return null;
  return err.message || String(err);
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    emit({ event: "error", error: errorText(err) });
    process.exit(1);
  }
  const httpOptions = { headers: opts.headers };
  if (opts.transport) {
    if (!(opts.transport in TRANSPORTS)) {
      emit({ event: "error", error: `unknown transport ${opts.transport}` });
      process.exit(1);
    }
    httpOptions.transport = TRANSPORTS[opts.transport];
  }
  if (opts.accessToken) httpOptions.accessTokenFactory = () => opts.accessToken;

  let builder = new signalR.HubConnectionBuilder()
    .withUrl(opts.url, httpOptions)
    .configureLogging(LOG_LEVELS[opts.logLevel] ?? signalR.LogLevel.None);
  if (opts.reconnect) builder = builder.withAutomaticReconnect(opts.reconnectDelays);
  const connection = builder.build();

  let finished = false;
  let exitCode = 0;
  const finish = async (code) => {
    if (finished) return;
    finished = true;
    exitCode = code;
    await connection.stop();
  };

  for (const target of opts.targets) {
    connection.on(target, (...args) => {
      emit({ event: "message", target, arguments: args });
      const first = args[0];
      if (opts.untilStatus && target === "status" && first && first.status === opts.untilStatus) {
        finish(0);
      }
    });
  }
  connection.onreconnecting((err) => emit({ event: "reconnecting", error: errorText(err) }));
  connection.onreconnected((id) => emit({ event: "reconnected", connectionId: id ?? null }));
  const closed = new Promise((resolve) => {
    connection.onclose((err) => {
      emit({ event: "closed", error: errorText(err) });
      if (!finished && err) exitCode = 2;
      finished = true;
      resolve();
    });
  });

  for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => finish(0));

  try {
    await connection.start();
  } catch (err) {
    emit({ event: "error", error: errorText(err) });
    process.exit(1);
  }
  emit({ event: "connected", connectionId: connection.connectionId, transport: opts.transport });
  if (opts.durationMs !== null) setTimeout(() => finish(0), opts.durationMs);
  await closed;
  process.exit(exitCode);
}

main();

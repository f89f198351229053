"""Queue fixture app: every invocation is appended to RECORD_FILE as a JSON line."""

import json
import os
import threading
import time

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
_lock = threading.Lock()
_running = 0


def record(**fields: object) -> None:
    with _lock, open(os.environ["RECORD_FILE"], "a", encoding="utf-8") as f:
        f.write(json.dumps({"t": time.time(), **fields}) + "\n")


@app.queue_trigger(arg_name="msg", queue_name="%WORK_QUEUE%", connection="AzureWebJobsStorage")
def work(msg: func.QueueMessage) -> None:
    """Body 'fail...' always raises; 'slow:N' sleeps N seconds; anything else succeeds."""
    global _running
    body = msg.get_body().decode("utf-8")
    with _lock:
        _running += 1
        running = _running
    try:
        record(
            fn="work",
            body=body,
            id=msg.id,
            dequeue_count=msg.dequeue_count,
            running=running,
            pop_receipt=msg.pop_receipt,
            insertion_time=str(msg.insertion_time),
            next_visible=str(msg.time_next_visible),
        )
        if body.startswith("slow:"):
            time.sleep(float(body.split(":", 1)[1].split("#")[0]))
        if body.startswith("fail"):
            raise ValueError("this message always fails")
    finally:
        with _lock:
            _running -= 1


@app.queue_trigger(arg_name="msg", queue_name="%POISON_QUEUE%", connection="")
def poisoned(msg: func.QueueMessage) -> None:
    record(fn="poisoned", body=msg.get_body().decode("utf-8", "replace"))


@app.route(route="enqueue", methods=["POST"])
@app.queue_output(arg_name="out", queue_name="%WAKE_QUEUE%", connection="AzureWebJobsStorage")
def enqueue(req: func.HttpRequest, out: func.Out[str]) -> func.HttpResponse:
    out.set(req.get_body().decode("utf-8"))
    return func.HttpResponse("queued", status_code=202)


@app.queue_trigger(arg_name="msg", queue_name="%WAKE_QUEUE%", connection="")
async def woken(msg: func.QueueMessage) -> None:
    record(fn="woken", body=msg.get_body().decode("utf-8"))

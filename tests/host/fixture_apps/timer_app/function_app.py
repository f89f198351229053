"""Timer fixture app: every invocation is appended to RECORD_FILE as a JSON line."""

import json
import os
import time

import azure.functions as func

app = func.FunctionApp()


def record(**fields: object) -> None:
    with open(os.environ["RECORD_FILE"], "a", encoding="utf-8") as f:
        f.write(json.dumps({"t": time.time(), **fields}) + "\n")


@app.timer_trigger(arg_name="timer", schedule="*/1 * * * * *", use_monitor=False)
def every_second(timer: func.TimerRequest) -> None:
    record(fn="every_second", past_due=timer.past_due)


@app.timer_trigger(arg_name="timer", schedule="0 0 0 1 1 *", run_on_startup=True)
def on_startup(timer: func.TimerRequest) -> None:
    record(fn="on_startup", past_due=timer.past_due)

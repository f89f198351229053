"""HTTP fixture app: routing, errors, bodies, identity headers, settings, logs."""

import asyncio
import json
import logging
import os

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def _json(value: object, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(value), status_code=status, mimetype="application/json")


@app.route(route="items/{id:int}", methods=["GET"])
def item_by_id(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"fn": "item_by_id", "id": req.route_params["id"]})


@app.route(route="items/new", methods=["GET"])
def item_new(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"fn": "item_new"})


@app.route(route="items/{name}", methods=["GET"])
def item_by_name(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"fn": "item_by_name", "name": req.route_params["name"]})


@app.route(route="files/{*rest}", methods=["GET"])
def files(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"fn": "files", "rest": req.route_params.get("rest")})


@app.route(route="opt/{id?}", methods=["GET"])
def optional(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"fn": "optional", "id": req.route_params.get("id")})


@app.route(route="guid/{id:guid}", methods=["GET"])
def by_guid(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"fn": "by_guid", "id": req.route_params["id"]})


@app.route(route="alpha/{v:alpha}", methods=["GET"])
def by_alpha(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"fn": "by_alpha", "v": req.route_params["v"]})


@app.route(route="echo", methods=["POST", "PUT"])
async def echo(req: func.HttpRequest) -> func.HttpResponse:
    return _json(
        {
            "method": req.method,
            "url": req.url,
            "params": dict(req.params),
            "headers": dict(req.headers),
            "body": req.get_body().decode("utf-8", "replace"),
            "length": len(req.get_body()),
        }
    )


@app.route(route="boom")
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("secret-internal-detail")


@app.route(route="whoami", methods=["GET", "POST"])
def whoami(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"user": req.headers.get("x-ms-client-principal-id")})


@app.route(route="settings", methods=["GET"])
def settings(req: func.HttpRequest) -> func.HttpResponse:
    names = ("FIXTURE_A", "FIXTURE_B", "FIXTURE_C")
    return _json({n: os.environ.get(n) for n in names})


@app.route(route="logs", methods=["GET"])
def logs(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    logging.getLogger("fixture").info("working on a job", extra={"jobId": "job-42"})
    return _json({"invocationId": context.invocation_id, "name": context.function_name})


@app.route(route="text", methods=["GET"])
def text(req: func.HttpRequest) -> str:
    return "plain"


@app.route(route="slow", methods=["GET"])
async def slow(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(float(req.params.get("s", "1")))
    return func.HttpResponse("done")

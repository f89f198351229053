"""Durable fixture app: an HTTP starter, an orchestration and an activity."""

import json

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="start/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = await client.start_new("greet", None, req.route_params["name"])
    return func.HttpResponse(json.dumps({"id": instance_id}), status_code=202)


@app.route(route="status/{id}", methods=["GET"])
@app.durable_client_input(client_name="client")
async def status(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    state = await client.get_status(req.route_params["id"])
    runtime = state.runtime_status.value if state and state.runtime_status else None
    return func.HttpResponse(
        json.dumps({"status": runtime, "output": state.output if state else None})
    )


@app.orchestration_trigger(context_name="context")
def greet(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    name = context.get_input()
    greeting = yield context.call_activity("say_hello", name)
    return greeting


@app.activity_trigger(input_name="name")
def say_hello(name: str) -> str:
    return f"hello {name}"

"""The function app: composition only. Each area registers its own blueprint."""

import azure.durable_functions as df

import activities
import api
import orchestrations
from relay import telemetry

telemetry.configure()
app = df.DFApp()

for blueprint in (*api.blueprints, orchestrations.bp, activities.bp):
    app.register_functions(blueprint)

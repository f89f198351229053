"""HTTP, queue and timer triggers: thin adapters over the core (relay/)."""

from . import groups, intake, jobs, realtime, site, sweeper

__all__ = ["blueprints"]

# The catch-all page route (site) goes last; the host orders routes by template anyway.
blueprints = (jobs.bp, groups.bp, realtime.bp, intake.bp, sweeper.bp, site.bp)

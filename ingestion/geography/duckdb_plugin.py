"""dbt-duckdb plugin (dbt_project/profiles.yml): every connection dbt opens gets
the spatial extension and h3_cell, which int_request_areas uses."""

from dbt.adapters.duckdb.plugins import BasePlugin

from ingestion.geography.spatial import configure


class Plugin(BasePlugin):
    def configure_connection(self, conn):
        configure(conn)

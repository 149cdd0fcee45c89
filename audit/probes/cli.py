"""`distill-audit probes ...`: list, show, stats, build, export."""

import click


@click.group()
def probes() -> None:
    """The behavioral probe suites: list, inspect, build private splits, export."""

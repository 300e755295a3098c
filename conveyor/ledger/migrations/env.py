"""Alembic environment: migrations always run on a connection handed in by
:mod:`conveyor.ledger.migrate`, never on a URL from an ini file."""

from alembic import context

from conveyor.ledger.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()

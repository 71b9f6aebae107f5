"""The SOL database: tables read by queries into batches, orders written into a staging table.

Modules, each named after what it does:

* ``database``: a database of gateway.yaml's ``databases:`` (its config model), connecting to it
  from the URL in its environment variable, and its errors in plain words;
* ``dialects``: the connection settings each kind of database takes in its own way;
* ``querytext``: what ``gateway check`` reads from a query without connecting;
* ``values``: database values as SOL's exports write them, and output text as column values;
* ``snapshot``: a run's tables streamed from one consistent read into a batch folder;
* ``watermark``: the highest change seen so far, kept in the journal between runs;
* ``staging``: the staging table and the gateway's key table;
* ``checks``: ``gateway check`` for the database flows, without and with a connection.

The kinds themselves are ``gateway/sources/sql.py`` and ``gateway/destinations/sql.py``.
SQLAlchemy is imported inside functions only: commands that do not touch a database do not
load it. docs/sol-database.md is the admin's side of all this.
"""

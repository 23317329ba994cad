"""The person index: golden records, links and queues, published through SQLAlchemy."""

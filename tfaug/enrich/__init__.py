"""``tfaug enrich``: one command from a user's dataset to a verdict, a classifier, an enriched dataset, a served
generator and a report. The top of the layering (like ``studies``, which it may import); nothing imports it."""

"""One spider per portal; each yields plain dicts shaped like :class:`tenderwatch.items.TenderItem`.

Spiders never import storage or alerts: the pipeline validates, classifies and stores what they yield.
"""

"""The maintainers' dashboard at the top of the admin: what the crowd, the queue, the models and the datasets
are doing now (``selectors``), drawn as small server-rendered SVG charts (``charts``); ``admin`` puts it on the
admin's index page."""

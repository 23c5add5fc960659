"""The built-in web dashboard: pages for operators and analysts, served by the API's app.

``create_app(settings)`` is the API (:func:`metrify.api.create_app`) with the dashboard's
pages and static files added (:func:`install`); ``metrify serve`` runs it. Every asset
(templates, scripts, styles, the uPlot charting library) ships in this package, so the
pages work with no internet.
"""

from metrify.web.app import create_app, install

__all__ = ["create_app", "install"]

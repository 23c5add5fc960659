"""Read models: every query that answers a question about stored data, by name.

One module per question, each a few typed functions over a connection: async where the
API's event loop calls them, sync where the CLI or a worker thread does.

* :mod:`~metrify.stores.reads.readings`: one meter's readings (page, latest, versions)
* :mod:`~metrify.stores.reads.meters`: which region a meter is in
* :mod:`~metrify.stores.reads.series`: grid and weather series
* :mod:`~metrify.stores.reads.quality`: daily quality scores
* :mod:`~metrify.stores.reads.fleet`: the fleet per region
* :mod:`~metrify.stores.reads.quarantine`: quarantined input
* :mod:`~metrify.stores.reads.rejects`: what validation rejected of one source
* :mod:`~metrify.stores.reads.reference`: meters, grid nodes, weather stations
* :mod:`~metrify.stores.reads.export`: readings in bulk
"""

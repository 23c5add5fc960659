select node_id, parent_id, kind, name, capacity_mw, nominal_kv, status
from {{ ref('stg_grid_nodes') }}

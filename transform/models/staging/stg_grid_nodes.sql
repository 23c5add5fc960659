select
    cast(node_id as varchar(64)) as node_id,
    cast(parent_id as varchar(64)) as parent_id,
    cast(kind as varchar(64)) as kind,
    cast(name as varchar(256)) as name,
    cast(capacity_mw as {{ float_type() }}) as capacity_mw,
    cast(nominal_kv as {{ float_type() }}) as nominal_kv,
    cast(status as varchar(16)) as status
from {{ source('store', 'grid_nodes') }}

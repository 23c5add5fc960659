select
    cast(station_id as varchar(64)) as station_id,
    cast(name as varchar(256)) as name,
    cast(latitude as {{ float_type() }}) as latitude,
    cast(longitude as {{ float_type() }}) as longitude,
    cast(elevation_m as {{ float_type() }}) as elevation_m,
    cast(status as varchar(16)) as status
from {{ source('store', 'weather_stations') }}

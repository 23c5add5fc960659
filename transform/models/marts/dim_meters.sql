select meter_id, site_id, region, node_id, station_id, tariff, commodity, interval_s,
       max_kw, has_pv, timezone, bucket_timezone, install_date, status, latitude, longitude
from {{ ref('stg_meters') }}

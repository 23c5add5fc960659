{#- Meters as the store holds them now. A meter without a commodity is an electricity
    meter (what every meter was before commodities), named here once; its unit is the
    commodity's default (docs/guides/commodities.md). -#}
select
    cast(meter_id as varchar(64)) as meter_id,
    cast(site_id as varchar(256)) as site_id,
    cast(region as varchar(256)) as region,
    cast(node_id as varchar(64)) as node_id,
    cast(station_id as varchar(64)) as station_id,
    cast(tariff as varchar(256)) as tariff,
    cast(interval_s as integer) as interval_s,
    cast(max_kw as {{ float_type() }}) as max_kw,
    has_pv,
    cast(timezone as varchar(64)) as timezone,
    cast(coalesce(timezone, '{{ var("fleet_timezone") }}') as varchar(64)) as bucket_timezone,
    install_date,
    cast(status as varchar(16)) as status,
    cast(coalesce(commodity, 'electricity') as varchar(16)) as commodity,
    cast(coalesce(unit, case coalesce(commodity, 'electricity')
        when 'gas' then 'm3' when 'water' then 'm3' else 'kWh' end) as varchar(16)) as unit,
    cast(calorific_value_mj_m3 as {{ float_type() }}) as calorific_value_mj_m3,
    cast(correction_factor as {{ float_type() }}) as correction_factor,
    cast(latitude as {{ float_type() }}) as latitude,
    cast(longitude as {{ float_type() }}) as longitude
from {{ source('store', 'meters') }}

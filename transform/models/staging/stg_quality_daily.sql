{#- The store's daily quality scores per meter and local day (VEE keeps them current). -#}
select
    cast(meter_id as varchar(64)) as meter_id,
    day,
    cast(expected as integer) as expected,
    cast(present as integer) as present,
    cast(valid as integer) as valid,
    cast(estimated as integer) as estimated,
    cast(suspect as integer) as suspect,
    cast(rejected as integer) as rejected,
    cast(missing as integer) as missing,
    cast(completeness as {{ float_type() }}) as completeness,
    cast(score as {{ float_type() }}) as score
from {{ source('store', 'quality_daily') }}

{#- Every day from 2000-01-01 (the earliest date a duration may use) to the end
    of the year after the as-of time. -#}

with

days as (

    select cast(day as date) as date_day
    from
        generate_series(
            date '2000-01-01',
            cast(date_trunc('year', {{ as_of() }}) + interval 2 year - interval 1 day as date),
            interval 1 day
        ) as series (day)

),

final as (

    select
        date_day,
        cast(year(date_day) as integer) as year,
        cast(quarter(date_day) as integer) as quarter,
        cast(month(date_day) as integer) as month,
        monthname(date_day) as month_name,
        cast(date_trunc('month', date_day) as date) as month_start,
        cast(date_trunc('week', date_day) as date) as iso_week_start,
        cast(isoyear(date_day) as integer) as iso_year,
        cast(week(date_day) as integer) as iso_week,
        cast(isodow(date_day) as integer) as iso_day_of_week,
        dayname(date_day) as day_name,
        isodow(date_day) >= 6 as is_weekend

    from days

)

select * from final

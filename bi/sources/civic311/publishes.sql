-- The publish this site was built from (civic311.publishes holds one row).
select
    publish_id,
    -- In UTC whatever the time zone of the machine that builds the site.
    strftime(make_timestamp(epoch_us(published_at)), '%Y-%m-%d %H:%M UTC') as published_at_utc
from civic311.publishes

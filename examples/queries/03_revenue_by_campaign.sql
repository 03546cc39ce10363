-- Which campaign drove revenue? Orders and net revenue credited to each channel and campaign
-- by the last touch (and by the first touch) within the attribution window before the order.
SELECT
    channel,
    campaign_source,
    campaign,
    reach_customers,
    last_touch_orders,
    last_touch_revenue_reporting,
    first_touch_orders,
    first_touch_revenue_reporting,
    round(last_touch_revenue_reporting / nullif(reach_customers, 0), 2)
        AS last_touch_revenue_per_customer_reached,
    attribution_window_days
FROM marts.channel_effectiveness
WHERE last_touch_orders > 0 OR first_touch_orders > 0
ORDER BY last_touch_revenue_reporting DESC, channel, campaign_source, campaign;

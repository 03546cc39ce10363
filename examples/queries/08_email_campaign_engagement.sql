-- How did each email campaign do? Messages delivered, opened and clicked (unique messages),
-- unsubscribes, spam reports and hard bounces, with open and click rates per delivered message.
WITH per_campaign AS (
    SELECT
        coalesce(campaign_name, '(none)') AS campaign_name,
        count(DISTINCT CASE WHEN event_type = 'delivered' THEN message_id END) AS delivered,
        count(DISTINCT CASE WHEN event_type = 'open' THEN message_id END) AS opened,
        count(DISTINCT CASE WHEN event_type = 'click' THEN message_id END) AS clicked,
        count(DISTINCT CASE WHEN event_type = 'unsubscribe' THEN email END) AS unsubscribed,
        count(DISTINCT CASE WHEN event_type = 'spamreport' THEN email END) AS spam_reports,
        count(DISTINCT CASE WHEN is_hard_bounce THEN email END) AS hard_bounces
    FROM marts.fct_email_events
    GROUP BY 1
)

SELECT
    campaign_name,
    delivered,
    opened,
    clicked,
    round(opened / nullif(delivered, 0), 3) AS open_rate,
    round(clicked / nullif(delivered, 0), 3) AS click_rate,
    unsubscribed,
    spam_reports,
    hard_bounces
FROM per_campaign
ORDER BY delivered DESC, campaign_name;

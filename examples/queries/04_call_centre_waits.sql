-- Where does the call centre keep customers waiting? Inbound calls per queue: median and 90th
-- percentile wait, the share waiting over two minutes, and the share who hung up unanswered.
SELECT
    queue,
    count(*) AS inbound_calls,
    round(median(wait_seconds), 1) AS median_wait_seconds,
    round(quantile_cont(wait_seconds, 0.9), 1) AS p90_wait_seconds,
    round(avg(CASE WHEN wait_seconds > 120 THEN 1 ELSE 0 END), 3) AS share_waiting_over_2_min,
    round(avg(CASE WHEN is_answered THEN 0 ELSE 1 END), 3) AS abandon_rate,
    round(avg(csat), 2) AS average_csat
FROM marts.fct_calls
WHERE direction = 'inbound'
GROUP BY queue
ORDER BY p90_wait_seconds DESC, queue;

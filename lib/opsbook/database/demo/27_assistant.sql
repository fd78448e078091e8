-- 004 AI Super Assistant: conversations and messages, automation workflows and jobs (fresh to the minute),
-- support tickets with comments, and 60 days of analytics events including edge-function invocations.

CREATE FUNCTION pg_temp.ticket_user(t bigint) RETURNS bigint LANGUAGE sql STABLE
  AS $$ SELECT pg_temp.active_user(t, 81, pg_temp.ticket_age(t)) $$;

INSERT INTO conversations (id, user_id, title, model, created_at, updated_at)
SELECT pg_temp.conv_id(c), pg_temp.uid(pg_temp.conv_user(c)),
       pg_temp.pick('{"Draft a reply to a customer","Summarise this contract","Compare two lease offers",
         "Fix my SQL query","Plan a marketing email","Explain this invoice","Translate to German",
         "Write a job description","Analyse sales numbers","Debug a webhook"}', c, 701),
       pg_temp.pick('{gpt-4o,gpt-4o,gpt-4o-mini,claude-3-5-sonnet,claude-3-5-sonnet,gemini-1.5-pro}', c, 702),
       pg_temp.ago(pg_temp.conv_age(c)), pg_temp.ago(pg_temp.conv_age(c) * power(pg_temp.r(c, 703), 3))
FROM generate_series(1, 8000) AS c;

INSERT INTO messages (id, conversation_id, role, content, tokens, created_at)
SELECT m, pg_temp.conv_id(c), role, left(p.txt, len), greatest(1, len / 4),
       pg_temp.ago(pg_temp.conv_age(c) * (1 - power(pg_temp.r(m, 712), 3)))
FROM generate_series(1, 80000) AS m
CROSS JOIN LATERAL (SELECT pg_temp.ri(m, 710, 1, 8000) AS c,
                           CASE WHEN m % 2 = 1 THEN 'user' ELSE 'assistant' END AS role) AS x
CROSS JOIN LATERAL (SELECT CASE role WHEN 'user' THEN pg_temp.ri(m, 711, 40, 400)
                                     ELSE pg_temp.ri(m, 711, 300, 3000) END::int AS len) AS y
JOIN para AS p ON p.k = pg_temp.ri(m, 713, 1, 1000);

INSERT INTO automation_workflows (id, user_id, name, trigger, enabled, created_at, updated_at)
SELECT w, pg_temp.uid(pg_temp.active_user(w, 721, 200)),
       pg_temp.pick('{"Nightly CRM sync","Lead follow-up e-mails","Invoice reminder","Ticket triage",
         "Weekly sales report","Price alert digest","Backup storage bucket","Slack notifier"}', w, 722),
       pg_temp.pick('{schedule,schedule,webhook,email_received,ticket_created}', w, 723),
       pg_temp.r(w, 724) < 0.85, pg_temp.ago(200 + 100 * pg_temp.r(w, 725)), pg_temp.ago(200 * pg_temp.r(w, 726))
FROM generate_series(1, 200) AS w;

-- one job every ~6.5 minutes for 90 days, the newest a few minutes ago (still queued or running)
INSERT INTO automation_jobs (id, workflow_id, status, attempts, result, error, started_at, finished_at, created_at,
                             updated_at)
SELECT j, pg_temp.ri(j, 730, 1, 200), status, CASE WHEN status = 'failed' THEN 3 ELSE 1 END,
       CASE WHEN status = 'succeeded' THEN jsonb_build_object('items_processed', pg_temp.ri(j, 732, 0, 500),
                                                              'duration_ms', dur_ms) END,
       CASE WHEN status = 'failed' THEN pg_temp.pick('{"upstream API returned 502","rate limit exceeded",
         "timeout after 60000 ms","invalid credentials for integration"}', j, 733) END,
       CASE WHEN status <> 'queued' THEN created + interval '2 seconds' END,
       CASE WHEN status IN ('succeeded', 'failed', 'cancelled')
            THEN created + interval '2 seconds' + dur_ms * interval '1 millisecond' END,
       created, created + interval '2 seconds' + dur_ms * interval '1 millisecond'
FROM generate_series(1, 20000) AS j
CROSS JOIN LATERAL (SELECT pg_temp.t0() - interval '2 minutes' - (20000 - j) * interval '388.8 seconds'
                             - pg_temp.r(j, 734) * interval '300 seconds' AS created,
                           pg_temp.ri(j, 735, 200, 60000) AS dur_ms) AS x
CROSS JOIN LATERAL (SELECT CASE WHEN j > 19995 THEN 'queued' WHEN j > 19990 THEN 'running'
                                ELSE pg_temp.pick('{succeeded,succeeded,succeeded,succeeded,succeeded,succeeded,
                                  succeeded,succeeded,succeeded,succeeded,succeeded,failed,cancelled}', j, 731)
                           END AS status) AS y;

INSERT INTO support_tickets (id, user_id, subject, description, priority, status, created_at, updated_at)
SELECT t, pg_temp.uid(pg_temp.ticket_user(t)),
       pg_temp.pick('{"Cannot log in","Invoice is wrong","Export to CSV fails","Workflow stuck in queued",
         "Upload of PDF fails","Chat answers are slow","Feature request: dark mode","Webhook not firing",
         "Password reset e-mail not received","Delete my account"}', t, 801),
       left(p.txt, pg_temp.ri(t, 802, 100, 1500)::int),
       pg_temp.pick('{low,medium,medium,high,urgent}', t, 803),
       CASE WHEN pg_temp.ticket_age(t) < 3 THEN pg_temp.pick('{open,open,in_progress}', t, 804)
            ELSE pg_temp.pick('{resolved,resolved,closed,closed,open}', t, 805) END,
       pg_temp.ago(pg_temp.ticket_age(t)), pg_temp.ago(pg_temp.ticket_age(t) * pg_temp.r(t, 806))
FROM generate_series(1, 3000) AS t
JOIN para AS p ON p.k = pg_temp.ri(t, 807, 1, 1000);

INSERT INTO ticket_comments (id, ticket_id, author_id, body, created_at)
SELECT c, t, pg_temp.uid(CASE WHEN pg_temp.r(c, 811) < 0.5 THEN pg_temp.ticket_user(t) ELSE 1 + 12 * pg_temp.ri(c, 812, 0, 9) END),
       left(p.txt, pg_temp.ri(c, 813, 30, 800)::int),
       pg_temp.ago(pg_temp.ticket_age(t) * (1 - pg_temp.r(c, 814)))
FROM generate_series(1, 8000) AS c
CROSS JOIN LATERAL (SELECT pg_temp.ri(c, 810, 1, 3000) AS t) AS x
JOIN para AS p ON p.k = pg_temp.ri(c, 815, 1, 1000);

-- one event every 86 seconds for 60 days, up to seconds ago
INSERT INTO analytics_events (id, user_id, event_type, name, properties, execution_time_ms, created_at, updated_at)
SELECT e, CASE WHEN pg_temp.r(e, 821) < 0.8 THEN pg_temp.uid(pg_temp.active_user(e, 822, 60)) END,
       et,
       CASE et WHEN 'function_invocation' THEN pg_temp.pick('{chat-completion,chat-completion,create-support-ticket,
                 run-automation,generate-valuation-pdf,send-email}', e, 823)
               WHEN 'page_view' THEN pg_temp.pick('{/dashboard,/chat,/listings,/tickets,/settings,/valuations}', e, 824)
               ELSE et END,
       jsonb_build_object('session', md5('web-session-' || (e / 20)), 'platform',
                          pg_temp.pick('{web,web,ios,android}', e, 825)),
       CASE WHEN et = 'function_invocation' THEN round(exp(ln(40) + pg_temp.r(e, 826) * ln(200)))::int END,
       created,
       created + coalesce(CASE WHEN et = 'function_invocation'
                               THEN round(exp(ln(40) + pg_temp.r(e, 826) * ln(200))) END, 0) * interval '1 millisecond'
FROM generate_series(1, 60000) AS e
CROSS JOIN LATERAL (SELECT pg_temp.pick('{page_view,page_view,page_view,page_view,function_invocation,
                             function_invocation,function_invocation,chat_message_sent,listing_viewed,listing_viewed,
                             valuation_requested,login}', e, 820) AS et,
                           pg_temp.t0() - (60000 - e) * interval '86.4 seconds'
                             - pg_temp.r(e, 827) * interval '60 seconds' AS created) AS x;

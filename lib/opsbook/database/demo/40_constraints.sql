-- Foreign keys and secondary indexes, added after the bulk load; identity sequences moved past the loaded ids.
-- Every foreign key has a supporting index but one (vehicle_listings.scraping_session_id: see 50_problems.sql).

ALTER TABLE profiles ADD FOREIGN KEY (id) REFERENCES auth.users (id) ON DELETE CASCADE,
                     ADD FOREIGN KEY (dealership_id) REFERENCES dealerships (id);
ALTER TABLE leads ADD FOREIGN KEY (dealership_id) REFERENCES dealerships (id),
                  ADD FOREIGN KEY (assigned_to) REFERENCES profiles (id);
ALTER TABLE interactions ADD FOREIGN KEY (lead_id) REFERENCES leads (id) ON DELETE CASCADE,
                         ADD FOREIGN KEY (user_id) REFERENCES profiles (id);
ALTER TABLE quotes ADD FOREIGN KEY (lead_id) REFERENCES leads (id) ON DELETE CASCADE,
                   ADD FOREIGN KEY (dealership_id) REFERENCES dealerships (id);
ALTER TABLE scraping_logs ADD FOREIGN KEY (session_id) REFERENCES scraping_sessions (id) ON DELETE CASCADE;
ALTER TABLE saved_searches ADD FOREIGN KEY (user_id) REFERENCES profiles (id) ON DELETE CASCADE;
ALTER TABLE notifications ADD FOREIGN KEY (user_id) REFERENCES profiles (id) ON DELETE CASCADE,
                          ADD FOREIGN KEY (saved_search_id) REFERENCES saved_searches (id) ON DELETE SET NULL,
                          ADD FOREIGN KEY (vehicle_listing_id) REFERENCES vehicle_listings (id) ON DELETE SET NULL;
ALTER TABLE valuations ADD FOREIGN KEY (user_id) REFERENCES profiles (id) ON DELETE CASCADE,
                       ADD FOREIGN KEY (vehicle_listing_id) REFERENCES vehicle_listings (id) ON DELETE SET NULL;
ALTER TABLE public_share_tokens ADD FOREIGN KEY (valuation_id) REFERENCES valuations (id) ON DELETE CASCADE;
ALTER TABLE conversations ADD FOREIGN KEY (user_id) REFERENCES profiles (id) ON DELETE CASCADE;
ALTER TABLE messages ADD FOREIGN KEY (conversation_id) REFERENCES conversations (id) ON DELETE CASCADE;
ALTER TABLE automation_workflows ADD FOREIGN KEY (user_id) REFERENCES profiles (id) ON DELETE CASCADE;
ALTER TABLE automation_jobs ADD FOREIGN KEY (workflow_id) REFERENCES automation_workflows (id) ON DELETE CASCADE;
ALTER TABLE support_tickets ADD FOREIGN KEY (user_id) REFERENCES profiles (id) ON DELETE CASCADE;
ALTER TABLE ticket_comments ADD FOREIGN KEY (ticket_id) REFERENCES support_tickets (id) ON DELETE CASCADE,
                            ADD FOREIGN KEY (author_id) REFERENCES profiles (id);
ALTER TABLE analytics_events ADD FOREIGN KEY (user_id) REFERENCES profiles (id) ON DELETE SET NULL;

CREATE INDEX profiles_dealership_id_idx ON profiles (dealership_id);
CREATE INDEX leads_dealership_id_status_idx ON leads (dealership_id, status);
CREATE INDEX leads_assigned_to_idx ON leads (assigned_to);
CREATE INDEX idx_leads_email ON leads (email);
CREATE INDEX idx_interactions_created ON interactions (created_at DESC);   -- from the CRM guide
CREATE INDEX interactions_lead_id_idx ON interactions (lead_id);
CREATE INDEX interactions_user_id_idx ON interactions (user_id);
CREATE INDEX quotes_lead_id_idx ON quotes (lead_id);
CREATE INDEX quotes_dealership_id_idx ON quotes (dealership_id);
CREATE INDEX scraping_sessions_started_at_idx ON scraping_sessions (started_at DESC);
CREATE INDEX vehicle_listings_make_model_created_at_idx ON vehicle_listings (make, model, created_at);
CREATE INDEX vehicle_listings_created_at_idx ON vehicle_listings (created_at);
CREATE INDEX scraping_logs_session_id_idx ON scraping_logs (session_id);
CREATE INDEX scraping_logs_created_at_idx ON scraping_logs (created_at);
CREATE INDEX saved_searches_user_id_idx ON saved_searches (user_id);
CREATE INDEX notifications_user_id_created_at_idx ON notifications (user_id, created_at DESC);
CREATE INDEX notifications_saved_search_id_idx ON notifications (saved_search_id);
CREATE INDEX notifications_vehicle_listing_id_idx ON notifications (vehicle_listing_id);
CREATE INDEX notifications_status_idx ON notifications (status);
CREATE INDEX valuations_user_id_idx ON valuations (user_id);
CREATE INDEX valuations_vehicle_listing_id_idx ON valuations (vehicle_listing_id);
CREATE INDEX public_share_tokens_valuation_id_idx ON public_share_tokens (valuation_id);
CREATE INDEX metrics_service_name_created_at_idx ON metrics (service, name, created_at);
CREATE INDEX metrics_created_at_idx ON metrics (created_at);
CREATE INDEX idx_conversations_user_id ON conversations (user_id);          -- the assistant guide's indexes
CREATE INDEX idx_messages_conversation_id ON messages (conversation_id);
CREATE INDEX idx_messages_created_at ON messages (created_at DESC);
CREATE INDEX automation_workflows_user_id_idx ON automation_workflows (user_id);
CREATE INDEX idx_automation_jobs_workflow_id ON automation_jobs (workflow_id);
CREATE INDEX idx_automation_jobs_status ON automation_jobs (status);
CREATE INDEX idx_support_tickets_user_id ON support_tickets (user_id);
CREATE INDEX idx_support_tickets_status ON support_tickets (status);
CREATE INDEX ticket_comments_ticket_id_idx ON ticket_comments (ticket_id);
CREATE INDEX ticket_comments_author_id_idx ON ticket_comments (author_id);
CREATE INDEX idx_analytics_events_user_id ON analytics_events (user_id);
CREATE INDEX idx_analytics_events_created_at ON analytics_events (created_at DESC);

-- ids were loaded explicitly: move every identity sequence past them
DO $$
DECLARE c record;
BEGIN
  FOR c IN SELECT a.attrelid::regclass AS tbl, a.attname
           FROM pg_attribute a JOIN pg_class r ON r.oid = a.attrelid
           WHERE r.relnamespace = 'public'::regnamespace AND a.attidentity <> '' LOOP
    EXECUTE format('SELECT setval(pg_get_serial_sequence(%L, %L), greatest(1, (SELECT max(%I) FROM %s)))',
                   c.tbl, c.attname, c.attname, c.tbl);
  END LOOP;
END $$;

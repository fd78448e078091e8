-- Supabase's grants (the API roles may touch every public table; row-level security decides which rows) and
-- RLS policies on every public table but two (public_share_tokens and metrics: see 50_problems.sql).

GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
GRANT ALL ON ALL TABLES IN SCHEMA public TO anon, authenticated, service_role;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;

-- every public table but two: public_share_tokens and metrics stay open (a deliberate problem: 50_problems.sql);
-- scraping_logs gets no policy below, so only service_role (BYPASSRLS) reads it
DO $$
DECLARE t text;
BEGIN
  FOR t IN SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'
             AND relname NOT IN ('public_share_tokens', 'metrics') ORDER BY 1 LOOP
    EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', t);
  END LOOP;
END $$;

-- the CRM: staff see their own dealership's rows
CREATE POLICY "Staff read their dealership" ON dealerships FOR SELECT TO authenticated
  USING (id = (SELECT dealership_id FROM profiles WHERE id = (SELECT auth.uid())));
CREATE POLICY "Profiles are readable by their owner" ON profiles FOR SELECT TO authenticated
  USING ((SELECT auth.uid()) = id);
CREATE POLICY "Profiles are editable by their owner" ON profiles FOR UPDATE TO authenticated
  USING ((SELECT auth.uid()) = id) WITH CHECK ((SELECT auth.uid()) = id);
CREATE POLICY "Staff manage their dealership's leads" ON leads FOR ALL TO authenticated
  USING (dealership_id = (SELECT dealership_id FROM profiles WHERE id = (SELECT auth.uid())))
  WITH CHECK (dealership_id = (SELECT dealership_id FROM profiles WHERE id = (SELECT auth.uid())));
-- written the way the guides do (auth.uid() per row, not once per statement): slower on big tables
CREATE POLICY "Staff manage interactions of their leads" ON interactions FOR ALL TO authenticated
  USING (lead_id IN (SELECT l.id FROM leads l JOIN profiles p ON p.dealership_id = l.dealership_id
                     WHERE p.id = auth.uid()));
CREATE POLICY "Staff manage their dealership's quotes" ON quotes FOR ALL TO authenticated
  USING (dealership_id = (SELECT dealership_id FROM profiles WHERE id = (SELECT auth.uid())));

-- the scraper: listings are public, the job tables readable to signed-in users
CREATE POLICY "Active listings are public" ON vehicle_listings FOR SELECT TO anon, authenticated USING (is_active);
CREATE POLICY "Signed-in users see scraping status" ON scraping_sessions FOR SELECT TO authenticated USING (true);
CREATE POLICY "Users manage their saved searches" ON saved_searches FOR ALL TO authenticated
  USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());
CREATE POLICY "Users read their notifications" ON notifications FOR SELECT TO authenticated
  USING (user_id = auth.uid());
CREATE POLICY "Users mark their notifications read" ON notifications FOR UPDATE TO authenticated
  USING (user_id = auth.uid());

-- valuations, the assistant, support, analytics: owner rows
CREATE POLICY "Users manage their valuations" ON valuations FOR ALL TO authenticated
  USING ((SELECT auth.uid()) = user_id) WITH CHECK ((SELECT auth.uid()) = user_id);
CREATE POLICY "Users manage their conversations" ON conversations FOR ALL TO authenticated
  USING ((SELECT auth.uid()) = user_id) WITH CHECK ((SELECT auth.uid()) = user_id);
CREATE POLICY "Users read messages of their conversations" ON messages FOR SELECT TO authenticated
  USING (conversation_id IN (SELECT id FROM conversations WHERE user_id = (SELECT auth.uid())));
CREATE POLICY "Users write messages to their conversations" ON messages FOR INSERT TO authenticated
  WITH CHECK (conversation_id IN (SELECT id FROM conversations WHERE user_id = (SELECT auth.uid())));
CREATE POLICY "Users manage their workflows" ON automation_workflows FOR ALL TO authenticated
  USING ((SELECT auth.uid()) = user_id) WITH CHECK ((SELECT auth.uid()) = user_id);
CREATE POLICY "Users read their workflows' jobs" ON automation_jobs FOR SELECT TO authenticated
  USING (workflow_id IN (SELECT id FROM automation_workflows WHERE user_id = (SELECT auth.uid())));
CREATE POLICY "Users manage their tickets" ON support_tickets FOR ALL TO authenticated
  USING ((SELECT auth.uid()) = user_id) WITH CHECK ((SELECT auth.uid()) = user_id);
CREATE POLICY "Users read comments on their tickets" ON ticket_comments FOR SELECT TO authenticated
  USING (ticket_id IN (SELECT id FROM support_tickets WHERE user_id = (SELECT auth.uid())));
CREATE POLICY "Users comment on their tickets" ON ticket_comments FOR INSERT TO authenticated
  WITH CHECK (author_id = (SELECT auth.uid()));
CREATE POLICY "Anyone may record events" ON analytics_events FOR INSERT TO anon, authenticated WITH CHECK (true);
CREATE POLICY "Users read their events" ON analytics_events FOR SELECT TO authenticated
  USING ((SELECT auth.uid()) = user_id);

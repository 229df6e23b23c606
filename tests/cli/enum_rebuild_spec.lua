-- Changing an enum that other objects depend on: a value removed (the rename-swap on the
-- way up) and a value added (the swap on the way down), with the type named by a partial
-- index, an expression index, a check constraint, a view (and a view on it), a generated
-- column (and an index on it), a domain (and a column of it), a function's argument, a
-- trigger on a converted column and an array column. The swap must drop each, convert the
-- columns and create each again from its own definition, in the migration's transaction:
-- rows kept, `check` clean, and the downgrade back to exactly the schema before.
local pg = require "helpers.pg"
local cli = require "helpers.cli"
local fixture = require "helpers.fixture"

local schema_lines = require("helpers.autogen").schema_lines

-- The objects autogenerate does not declare (views, functions, the domain, the trigger)
-- are made here; the table and the enum are declared in schema.lua as well.
local BASE = [[
CREATE TYPE post_status AS ENUM ('draft', 'published', 'archived', 'hidden');
CREATE DOMAIN visible_status AS post_status CHECK (VALUE <> 'draft');
COMMENT ON DOMAIN visible_status IS 'a status readers may see';
CREATE TABLE posts (
  id serial PRIMARY KEY,
  status post_status NOT NULL DEFAULT 'draft',
  history post_status[] NOT NULL DEFAULT '{}',
  shown visible_status,
  title text,
  is_live boolean GENERATED ALWAYS AS (status = 'published') STORED,
  CONSTRAINT posts_archived_titled CHECK (status <> 'archived' OR title IS NOT NULL)
);
CREATE INDEX ix_posts_published ON posts (id) WHERE status = 'published';
CREATE INDEX ix_posts_drafts_first ON posts ((status = 'draft'), id);
CREATE INDEX ix_posts_live ON posts (is_live);
CREATE VIEW published_posts AS SELECT id, title FROM posts WHERE status = 'published';
COMMENT ON VIEW published_posts IS 'what readers see';
CREATE VIEW published_titles AS SELECT title FROM published_posts;
CREATE FUNCTION status_label(s post_status) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT initcap(s::text) $$;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.title := coalesce(NEW.title, ''); RETURN NEW; END $$;
CREATE TRIGGER posts_touch BEFORE UPDATE OF status ON posts FOR EACH ROW EXECUTE FUNCTION touch();
INSERT INTO posts (status, history, shown, title)
SELECT (ARRAY['draft', 'published', 'archived']::post_status[])[1 + g % 3], ARRAY['draft']::post_status[],
       CASE WHEN g % 2 = 0 THEN 'published'::visible_status END, 't' || g
FROM generate_series(1, 30) g;
]]

local function declared(values)
  return ([[
local md = sa.MetaData()
local status = sa.Enum(%s, { name = "post_status" })
sa.Table("posts", md,
  sa.Column("id", sa.Integer, { primary_key = true }),
  sa.Column("status", status, { nullable = false, server_default = "draft" }),
  sa.Column("history", sa.ARRAY(status), { nullable = false, server_default = sa.text("'{}'") }),
  sa.Column("shown", "visible_status"),
  sa.Column("title", sa.Text),
  sa.Column("is_live", sa.Boolean, sa.Computed("status = 'published'")),
  sa.CheckConstraint("status <> 'archived' OR title IS NOT NULL", { name = "posts_archived_titled" }),
  sa.Index("ix_posts_published", "id", { postgresql_where = sa.text("status = 'published'") }),
  sa.Index("ix_posts_drafts_first", sa.text("(status = 'draft')"), "id"),
  sa.Index("ix_posts_live", "is_live"))
return md
]]):format(values)
end

local REBUILT = { "index public.ix_posts_published", "index public.ix_posts_drafts_first",
  "index public.ix_posts_live", "table constraint posts_archived_titled on public.posts",
  "view public.published_posts", "view public.published_titles", "table column public.posts.is_live",
  "domain public.visible_status", "table column public.posts.shown",
  "function public.status_label(public.post_status)", "trigger posts_touch on public.posts" }

describe("an enum change with dependents", function()
  local fx = fixture.new { scope = "all" }
  local dir, url

  setup(function()
    dir, url = fx:open { prefix = "enumdeps" }
    pg.psql(url, BASE)
    assert.equal(0, cli.run({ "--url", url, "stamp", "base" }, { cwd = dir }).code)
  end)

  local run = fx.run

  local function rows()
    return pg.psql(url, "SELECT string_agg(id || ':' || status || ':' || history::text || ':' || "
      .. "coalesce(shown::text, '-') || ':' || is_live, ' ' ORDER BY id) FROM posts")
  end

  local function generate(values, needles)
    cli.write(dir .. "/migrations/schema.lua", declared(values))
    local r = run("revision", "--autogenerate", "-m", "enum")
    assert.equal(0, r.code, r.err)
    local path = dir .. "/" .. r.out:match("Generating (%S+) %.%.%. done")
    local text = cli.slurp(path)
    for _, needle in ipairs(needles) do
      assert.truthy(text:find(needle, 1, true), ("expected %s in:\n%s"):format(needle, text))
    end
    return text
  end

  local function round_trip(text)
    local before, data = schema_lines(url), rows()
    local r = run("upgrade", "head")
    assert.equal(0, r.code, r.err .. "\n" .. text)
    assert.equal(data, rows())
    r = run("check")
    assert.equal(0, r.code, r.out .. r.err .. "\n" .. text)
    -- the objects still work: the view filters on the new type, the function takes it
    assert.equal("10", pg.psql(url, "SELECT count(*) FROM published_titles"))
    assert.equal("Draft", pg.psql(url, "SELECT status_label('draft')"))
    assert.equal("what readers see", pg.psql(url, "SELECT obj_description('published_posts'::regclass)"))
    r = run("downgrade", "-1")
    assert.equal(0, r.code, r.err .. "\n" .. text)
    assert.equal(before, schema_lines(url))
    assert.equal(data, rows())
    assert.equal(0, run("upgrade", "head").code)
  end

  it("starts from a declared schema check finds identical (generated column, domain column, array)", function()
    cli.write(dir .. "/migrations/schema.lua", declared('"draft", "published", "archived", "hidden"'))
    local r = run("check")
    assert.equal(0, r.code, r.out .. r.err)
  end)

  it("removes a value: each dependent dropped and recreated around the swap, and back", function()
    local text = generate('"draft", "published", "archived"', { "RENAME TO", "DROP VIEW public.published_titles",
      "CREATE VIEW public.published_posts", "CREATE OR REPLACE FUNCTION public.status_label",
      "CREATE DOMAIN public.visible_status", "CREATE TRIGGER posts_touch", "ADD COLUMN is_live" })
    for _, what in ipairs(REBUILT) do
      assert.truthy(text:find("-- " .. what .. "\n", 1, true), ("%s not rebuilt:\n%s"):format(what, text))
    end
    -- --sql shows the statements that rebuild them
    local r = run("upgrade", "--sql", "head")
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find("DROP INDEX public.ix_posts_published;", 1, true), r.out)
    assert.truthy(r.out:find("CREATE INDEX ix_posts_published ON public.posts USING btree (id) WHERE "
      .. "(status = 'published'::post_status);", 1, true), r.out)
    round_trip(text)
  end)

  it("adds a value in place; the downgrade swaps it out with the same rebuild", function()
    local text = generate('"draft", "published", "archived", "scheduled"', { "op.add_enum_value",
      "DROP VIEW public.published_titles" })
    local down = text:match("function downgrade%(%)(.-)\nend")
    assert.truthy(down:find("CREATE INDEX ix_posts_drafts_first", 1, true), text)
    round_trip(text)
  end)
end)

describe("helpers/enum.lua with dependents", function()
  local fx = fixture.new { scope = "all" }
  local dir, url
  local helper = cli.slurp(cli.src .. "/migrations/helpers/enum.lua")

  setup(function()
    url = fx:new_db("enumhelper")
    -- the helper converts the columns it is given: here status, not the array
    pg.psql(url, (BASE:gsub("  history post_status%[%] NOT NULL DEFAULT '{}',\n", "")
      :gsub("INSERT INTO posts %(status, history,", "INSERT INTO posts (status,")
      :gsub("::post_status%[%]%)%[1 %+ g %% 3%], ARRAY%['draft'%]::post_status%[%]", "::post_status[])[1 + g %% 3]")))
    local body = [[
  enum.change_enum_and_alter_tables("post_status", { "draft", "published", "archived" }, { posts = "status" })
]]
    local back = [[
  enum.change_enum_and_alter_tables("post_status", { "draft", "published", "archived", "hidden" }, { posts = "status" })
]]
    dir = fx:project { files = {
      ["migrations/helpers/enum.lua"] = helper,
      ["migrations/versions/a1_drop_hidden.lua"] = 'local enum = require "helpers.enum"\n'
        .. cli.revision("a1", nil, body, back),
    } }
    assert.equal(0, cli.run({ "--url", url, "stamp", "base" }, { cwd = dir }).code)
  end)

  local run = fx.run

  it("rebuilds what it finds when the migration runs, naming each, and the downgrade restores the schema", function()
    local before = schema_lines(url)
    local data = pg.psql(url, "SELECT string_agg(id || ':' || status || ':' || is_live, ' ' ORDER BY id) FROM posts")
    local r = run("upgrade", "head")
    assert.equal(0, r.code, r.err)
    for _, what in ipairs(REBUILT) do
      assert.truthy(r.err:find("enum post_status: rebuilding " .. what, 1, true), what .. "\n" .. r.err)
    end
    assert.equal("{draft,published,archived}", pg.psql(url, "SELECT enum_range(NULL::post_status)::text"))
    assert.equal("10", pg.psql(url, "SELECT count(*) FROM published_titles"))
    assert.equal("", pg.psql(url, "SELECT coalesce(to_regclass('luamigrate_enum_rebuild')::text, '')"))
    r = run("downgrade", "base")
    assert.equal(0, r.code, r.err)
    assert.equal(before, schema_lines(url))
    assert.equal(data, pg.psql(url, "SELECT string_agg(id || ':' || status || ':' || is_live, ' ' ORDER BY id) FROM posts"))
  end)

  it("fails as a whole, naming what it cannot rebuild, with the database unchanged", function()
    pg.psql(url, "CREATE TYPE status_pair AS (a post_status, b int)")
    local before = schema_lines(url)
    local r = run("upgrade", "head")
    assert.equal(1, r.code, r.err)
    assert.truthy(r.err:find("enum post_status: cannot rebuild composite type column public.status_pair.a", 1, true), r.err)
    assert.equal(before, schema_lines(url))
    pg.psql(url, "DROP TYPE status_pair")
  end)
end)

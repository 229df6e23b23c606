-- The project's own helper module: here, the enum change luamigrate ships
-- (luamigrate.helpers.enum), handed on so migrations can `require "helpers.enum"`. A helper
-- of your own goes in this directory the same way; it requires what it uses, as any Lua
-- module does: local op = require "luamigrate.op"; local sa = require "luamigrate.sa".
return require "luamigrate.helpers.enum"

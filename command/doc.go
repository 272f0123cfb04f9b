// Package command holds what the bot can do: the Command type, the ordered
// command table that matches a line of chat to a command, the parser that
// splits the line into words, and the built-in commands (help, list
// services, get service, query/call, health, register service, deregister
// service, echo, hello, ping, time, the three laws).
//
// # Parsing
//
// A line is split into words at runs of white space (spaces, tabs, no-break
// spaces, new lines). Typographic quotes, which phones and chat clients put
// in for you, are first turned into ASCII ones: “ ” „ ‟ become " and ‘ ’ ‚ ‛
// become '. A word that starts with a quote runs to the matching quote and
// may hold spaces ("hello  world" is one word, spaces kept); a quote with no
// match, or inside a word (don't), is an ordinary character. There are no
// escapes. The raw text after any word stays available verbatim through
// [Request.Rest], which is how query gets its JSON request untouched however
// many spaces it holds.
//
// # Matching
//
// Every command has one or more patterns: its Name and each of its Aliases,
// each a sequence of literal words ("list services", "the three laws",
// "call"). A line matches a pattern when its first words equal the pattern's
// words, compared case-insensitively (Unicode simple folding); the words
// after them are the command's parameters. The rule for which command wins
// when several patterns match is:
//
//  1. the pattern with the most words wins (the longest literal prefix);
//  2. between patterns of the same length, the command registered first
//     wins (built-ins in the order given to [Table.Register], then service
//     commands, which are one word and never tie with a built-in).
//
// Matching looks up the first word in a map, so its cost does not grow with
// the number of commands. A line that matches nothing gets a short reply
// pointing to help, naming the commands that start with the same word if
// there are any ("list" alone suggests "list services").
//
// # Commands added at run time
//
// Commands can be added and removed while the bot runs with [Table.Put] and
// [Table.Remove] (package commandsvc/watch does so for command services).
// Such a command has a one-word name and takes that word over: a built-in
// marked Replaceable whose pattern starts with the word (echo, hello, ping,
// time, the three laws) is hidden while the command is there and comes back
// when it goes; a built-in that is not Replaceable (help, list, get,
// query, call, health, register, deregister) or a reserved word
// ([Table.Reserve], e.g. confirm) cannot be taken: Put refuses it with
// [ErrReserved].
//
// # Completion
//
// [Table.Complete] proposes completions of a line being typed (the
// console's Tab key): the next word of the commands the caller may see, and
// values of the parameter being typed from the matched command's Complete
// function. The built-ins complete service names from the registry (get
// service, query/call, health, deregister service), a service's endpoints
// and a request skeleton from the endpoint's fields for query
// (`query go.micro.srv.greeter Say.Hello ⇥` gives `{"name": ""}`), a
// service's definition for deregister, and command names for help. They
// read the registry with the caller's context, so its deadline bounds them.
//
// # What the reader sees
//
// Values from the registry and from services (names, versions, node ids,
// addresses, metadata, statuses, error details, help lines) are shown
// through [input.PrintableLine], and every reply's text through
// [input.Printable]: control characters, bidirectional controls and
// invalid UTF-8 appear escaped (\x1b, \u202e), so a node id cannot add a row
// to a table and a version cannot clear the reader's screen. A command name
// must be one word of printable characters.
//
// # Hooks
//
// A [Visibility] function given with [WithVisibility] decides which
// commands help lists and suggests to a caller (an access policy plugs in
// here). Command.Metadata carries data about a command a policy may read
// (for service commands: the service's registry metadata).
package command

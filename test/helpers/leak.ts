/** What no response body may contain: a stack frame, an absolute path, a source file reference. */
export const LEAK = /\bat [\w.<>]+ \(|\/(work|home|usr|tmp|root|opt|srv)\/|node_modules|\.[cm]?[jt]s:\d+/;

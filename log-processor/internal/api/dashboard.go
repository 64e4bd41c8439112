package api

import _ "embed"

// dashboard is the page GET / serves to browsers: plain HTML, CSS and
// JavaScript in one file, with no build step and nothing fetched from
// elsewhere, so it works offline. It polls /stats every second, draws the
// rates itself, and follows /logs/tail.
//
//go:embed dashboard.html
var dashboard []byte

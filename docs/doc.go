// Package docs holds the project's documentation, in Markdown; its test
// checks that every relative link in it, and in the README, resolves.
package docs

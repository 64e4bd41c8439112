//go:build !race

package poll

const raceScale = 1

//go:build race

package poll

// raceScale: the race detector slows a program down 2 to 10 times.
const raceScale = 2

//go:build race

package crm_test

const raceEnabled = true

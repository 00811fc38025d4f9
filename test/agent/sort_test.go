package agent_test

import "sort"

func sortLines(ls []dumpLine) { sort.Slice(ls, func(i, j int) bool { return ls[i].Key < ls[j].Key }) }

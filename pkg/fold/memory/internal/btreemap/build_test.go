// Added to the fork (not in github.com/RaduBerinde/btreemap); same license as the package.

package btreemap

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
)

// checkTree fails unless t is a valid B-tree holding exactly want (in order): every
// non-root node holds minItems to maxItems items (a leaf on the right edge at least one:
// see maybeSplitChild), inner nodes one child more, all leaves at one depth, keys in
// order.
func checkTree(t *testing.T, tr *BTreeMap[int, int], want []int) {
	t.Helper()
	if tr.Len() != len(want) {
		t.Fatalf("Len %d, want %d", tr.Len(), len(want))
	}
	leafDepth := -1
	var walk func(n *node[int, int], depth int, root, rightEdge bool)
	walk = func(n *node[int, int], depth int, root, rightEdge bool) {
		least := tr.minItems()
		if rightEdge && len(n.children) == 0 {
			least = 1
		}
		if !root && (len(n.items) < least || len(n.items) > tr.maxItems()) {
			t.Fatalf("node at depth %d holds %d items (%d to %d allowed)", depth, len(n.items), least, tr.maxItems())
		}
		if root && len(n.items) == 0 && tr.length > 0 {
			t.Fatal("empty root of a non-empty tree")
		}
		if len(n.children) == 0 {
			if leafDepth == -1 {
				leafDepth = depth
			} else if depth != leafDepth {
				t.Fatalf("leaves at depths %d and %d", leafDepth, depth)
			}
			return
		}
		if len(n.children) != len(n.items)+1 {
			t.Fatalf("inner node with %d items and %d children", len(n.items), len(n.children))
		}
		for i, c := range n.children {
			walk(c, depth+1, false, rightEdge && i == len(n.children)-1)
		}
	}
	if tr.root != nil {
		walk(tr.root, 0, true, true)
	}
	var got []int
	for k, v := range tr.Ascend(Min[int](), Max[int]()) {
		if v != -k {
			t.Fatalf("key %d holds %d", k, v)
		}
		got = append(got, k)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("tree holds %d keys, want %d", len(got), len(want))
	}
}

func build(degree int, keys []int) *BTreeMap[int, int] {
	b := NewBuilder[int, int](degree, cmp.Compare[int])
	for _, k := range keys {
		b.Add(k, -k)
	}
	return b.Build()
}

// A built tree is a valid B-tree for every size, including the ones that leave the right
// edge short at several levels, and stays one through inserts, deletes and clones.
func TestBuilder(t *testing.T) {
	sizes := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 30, 31, 32, 33, 62, 63, 64, 100, 496, 497, 512, 1000, 1023, 1024, 1025, 5000, 15377, 16384, 20000}
	for _, degree := range []int{2, 3, 16} {
		for _, n := range sizes {
			keys := make([]int, n)
			for i := range keys {
				keys[i] = 2 * i
			}
			tr := build(degree, keys)
			checkTree(t, tr, keys)
			for _, k := range keys {
				if _, v, ok := tr.Get(k); !ok || v != -k {
					t.Fatalf("degree %d, %d keys: Get(%d) = %d, %v", degree, n, k, v, ok)
				}
			}
			// A clone shares the built nodes; writes to either copy them.
			snap := tr.Clone()
			rng := rand.New(rand.NewPCG(uint64(n), uint64(degree)))
			want := slices.Clone(keys)
			for range n/2 + 10 {
				if k := rng.IntN(2*n + 2); k%2 == 1 {
					tr.ReplaceOrInsert(k, -k)
					if i, found := slices.BinarySearch(want, k); !found {
						want = slices.Insert(want, i, k)
					}
				} else if _, _, ok := tr.Delete(k); ok {
					i, _ := slices.BinarySearch(want, k)
					want = slices.Delete(want, i, i+1)
				}
			}
			checkTree(t, tr, want)
			checkTree(t, snap, keys)
		}
	}
}

// Items of a built tree, in key order, are those added.
func TestBuilderLarge(t *testing.T) {
	keys := make([]int, 1_000_000)
	for i := range keys {
		keys[i] = i
	}
	checkTree(t, build(16, keys), keys)
}

// Keys inserted in increasing order leave every leaf full but the last (maxItems-1 items,
// the last one going up as the separator: the leaf on the right edge splits at its end),
// and leaves are most of the map's memory; the
// map stays valid through appends, inserts in the middle and deletes that empty the
// short last leaf.
func TestAppendsFillLeaves(t *testing.T) {
	for _, degree := range []int{2, 3, 16} {
		tr := New[int, int](degree, cmp.Compare[int])
		var want []int
		for i := range 5000 {
			tr.ReplaceOrInsert(2*i, -2*i)
			want = append(want, 2*i)
		}
		checkTree(t, tr, want)
		leaves, short := 0, 0
		var walk func(n *node[int, int], last bool)
		walk = func(n *node[int, int], last bool) {
			if len(n.children) == 0 {
				leaves++
				if len(n.items) < tr.maxItems()-1 && !last {
					short++
				}
			}
			for i, c := range n.children {
				walk(c, last && i == len(n.children)-1)
			}
		}
		walk(tr.root, true)
		if short > 0 {
			t.Fatalf("degree %d: %d of %d leaves not full after appends", degree, short, leaves)
		}
		rng := rand.New(rand.NewPCG(uint64(degree), 7))
		for op := range 20000 {
			k := rng.IntN(2*len(want) + 40)
			switch {
			case op%3 == 0: // append past the end
				k = 2*5000 + op
				fallthrough
			case k%2 == 1:
				tr.ReplaceOrInsert(k, -k)
				if i, found := slices.BinarySearch(want, k); !found {
					want = slices.Insert(want, i, k)
				}
			default:
				if _, _, ok := tr.Delete(k); ok {
					i, _ := slices.BinarySearch(want, k)
					want = slices.Delete(want, i, i+1)
				}
			}
			if op%1000 == 0 {
				checkTree(t, tr, want)
			}
		}
		checkTree(t, tr, want)
		for len(want) > 0 { // from the right: the short leaf is emptied by deletes
			k := want[len(want)-1]
			if _, _, ok := tr.Delete(k); !ok {
				t.Fatalf("Delete(%d) found nothing", k)
			}
			want = want[:len(want)-1]
			if len(want)%97 == 0 {
				checkTree(t, tr, want)
			}
		}
	}
}

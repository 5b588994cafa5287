"""Tests of ``receiver_csr``, the receiver-sorted graph format."""

import pytest
import torch

from ponita.ops import receiver_csr


def test_receiver_csr_sorts_by_receiver_then_sender_and_builds_row_pointer():
    edge_index = torch.tensor([[2, 0, 1, 2, 0], [1, 1, 0, 3, 3]])
    csr, perm = receiver_csr(edge_index, 5)
    assert csr.dst.tolist() == [0, 1, 1, 3, 3]
    assert csr.src.tolist() == [1, 0, 2, 0, 2]
    assert csr.row_ptr.tolist() == [0, 1, 3, 3, 5, 5]  # node 2 and node 4 receive nothing
    assert torch.equal(edge_index[:, perm], torch.stack([csr.src, csr.dst]))
    assert csr.num_nodes == 5 and csr.num_edges == 5


def test_receiver_csr_identity_permutation_when_sorted_and_keeps_duplicates():
    edge_index = torch.tensor([[0, 0, 1, 1], [0, 1, 1, 1]])
    csr, perm = receiver_csr(edge_index, 2)
    assert perm.tolist() == [0, 1, 2, 3]
    assert csr.row_ptr.tolist() == [0, 1, 4]


def test_receiver_csr_of_no_edges():
    csr, perm = receiver_csr(torch.zeros(2, 0, dtype=torch.long), 3)
    assert csr.num_edges == 0 and perm.numel() == 0
    assert csr.row_ptr.tolist() == [0, 0, 0, 0]


def test_receiver_csr_rejects_bad_shape_and_out_of_range_indices():
    with pytest.raises(ValueError, match=r"edge_index must have shape \[2, E\]"):
        receiver_csr(torch.zeros(3, 4, dtype=torch.long), 5)
    with pytest.raises(ValueError, match=r"outside \[0, 3\).*max 3"):
        receiver_csr(torch.tensor([[0, 3], [1, 2]]), 3)


def test_the_sender_order_lists_each_senders_edges_by_receiver() -> None:
    generator = torch.Generator().manual_seed(0)
    edge_index = torch.randint(0, 7, (2, 40), generator=generator)
    csr, _ = receiver_csr(edge_index, 9)  # nodes 7 and 8 have no edges
    assert sorted(csr.sender_order.tolist()) == list(range(40))
    for sender in range(9):
        edges = csr.sender_order[csr.sender_ptr[sender]:csr.sender_ptr[sender + 1]]
        assert (csr.src[edges] == sender).all()
        assert edges.tolist() == sorted(edges.tolist())  # receivers ascending, as in the receiver order
        assert len(edges) == int((edge_index[0] == sender).sum())

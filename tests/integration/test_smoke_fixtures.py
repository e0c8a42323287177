from support import PASSWORD, user_ctx

from mes.services.audit import verify_audit_trail
from mes.services.users import authenticate


def test_a_created_user_can_log_in_and_the_audit_chain_verifies(make_uow, create_user):
    user_id = create_user("alice")
    with make_uow() as uow:
        user = authenticate(uow, user_ctx(user_id), "alice", PASSWORD)
        assert user.id == user_id
    with make_uow() as uow:
        assert verify_audit_trail(uow) == 2

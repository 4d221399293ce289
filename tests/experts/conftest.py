"""Fixtures shared by the expert tests."""
import pytest


@pytest.fixture
def editor(db):
    """A user with the edit-map permission (not staff), who may not change expert backends."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    u = get_user_model().objects.create_user("editor", password="editor-pass-123")
    u.user_permissions.add(Permission.objects.get(codename="edit_map"))
    return u


@pytest.fixture
def backend_admin(db):
    """A backend administrator (the Backend admins role: map editing plus expert backends)."""
    from tests.conftest import make_user

    return make_user("backend-admin", "Backend admins")


@pytest.fixture
def upstreams(settings):
    """Outbound rules that admit the hosts these tests name (vllm, this machine) and COE_KEY_* key variables."""
    settings.COE_UPSTREAM_ALLOWED_HOSTS = ["vllm", "127.0.0.1", "localhost"]
    settings.COE_API_KEY_ENV_PREFIX = "COE_KEY_"
    return settings

SENTENCES = ["the quick brown fox jumps over the lazy dog", "a tiny model writes tiny words",
             "hello world from the test suite", "user assistant system says hello",
             "experts answer questions about code and maths"]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A 1-layer GPT-2 over a word-level vocabulary (~30 words), saved like any local model."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GenerationConfig, GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("tiny-gpt2")
    raw = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.decoder = decoders.WordPiece()  # joins words with spaces
    raw.train_from_iterator(SENTENCES, trainers.WordLevelTrainer(special_tokens=["[UNK]", "[PAD]", "</s>"]))
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]", pad_token="[PAD]", eos_token="</s>")
    tok.save_pretrained(path)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=32, n_positions=256, vocab_size=tok.vocab_size,
                                       bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id,
                                       pad_token_id=tok.pad_token_id))
    # an untrained model likes special tokens (which decode to nothing) and repeating one word
    model.generation_config = GenerationConfig(suppress_tokens=[tok.unk_token_id, tok.pad_token_id],
                                               no_repeat_ngram_size=1, eos_token_id=tok.eos_token_id,
                                               pad_token_id=tok.pad_token_id)
    model.save_pretrained(path)
    return str(path)

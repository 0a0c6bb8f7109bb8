# Random-weight copies of MiniLM and SmolLM2 with their real configs and tokenizers (throughput
# does not depend on the values; device agreement is checked on them too).
import shutil, sys, torch
from transformers import BertConfig, BertModel, LlamaConfig, LlamaForCausalLM
torch.manual_seed(0)
src_m, dst_m, src_l, dst_l = sys.argv[1:5]
shutil.copytree(src_m, dst_m, dirs_exist_ok=True)
BertModel(BertConfig.from_pretrained(src_m)).eval().save_pretrained(dst_m, safe_serialization=True)
shutil.copytree(src_l, dst_l, dirs_exist_ok=True)
c = LlamaConfig.from_pretrained(src_l); c.torch_dtype = "float32"
LlamaForCausalLM(c).eval().save_pretrained(dst_l, safe_serialization=True)
print("random models written")

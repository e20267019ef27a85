from sbx import DockerSandbox

# Data science environment
sandbox = DockerSandbox(runtime="python-datascience")

sandbox.write("/workspace/analysis.py", """
import pandas as pd
import numpy as np

data = pd.DataFrame({
    'x': np.random.randn(100),
    'y': np.random.randn(100),
})
print(data.describe())
""")

result = sandbox.execute("python /workspace/analysis.py")
print(result.output)
